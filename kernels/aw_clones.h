/*
 * aw_clones.h - private to kernels/: AW_CLONES gives a hot loop an AVX2
 * clone picked at load time where the CPU has it, the baseline build
 * staying portable. Both clones compute the same values (IEEE operations in
 * the same order; ISO C: no fma contraction). gcc on ELF only; elsewhere,
 * or with -DAW_NO_CLONES (to time or test the baseline code), the plain
 * function. AW_INLINE: helpers of a cloned function must be inlined into
 * each clone to get its ISA.
 */
#ifndef AW_CLONES_H
#define AW_CLONES_H

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__ELF__) &&         \
    !defined(AW_NO_CLONES)
#define AW_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define AW_CLONES
#endif

#if defined(__GNUC__)
#define AW_INLINE __attribute__((always_inline))
#else
#define AW_INLINE
#endif

#endif
