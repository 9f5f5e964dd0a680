/*
 * aw_rng.h - deterministic pseudo-random numbers (splitmix64 seeding a
 * xoshiro256** stream) for generated models, calibration tokens and tests.
 * Streams are keyed by (seed, string) so that each tensor's values do not
 * depend on the order in which tensors are generated.
 */
#ifndef AW_RNG_H
#define AW_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct {
    uint64_t s[4];
} aw_rng;

static inline uint64_t aw_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* FNV-1a of a string, to key a stream by a tensor name. */
static inline uint64_t aw_hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return h;
}

static inline void aw_rng_seed(aw_rng *r, uint64_t seed, const char *key)
{
    uint64_t x = seed ^ (key ? aw_hash_str(key) : 0);
    for (int i = 0; i < 4; i++) r->s[i] = aw_splitmix64(&x);
}

static inline uint64_t aw_rng_next(aw_rng *r)
{
    uint64_t *s = r->s;
    uint64_t t = s[1] << 17;
    uint64_t res = s[1] * 5;
    res = ((res << 7) | (res >> 57)) * 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return res;
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double aw_rng_uniform(aw_rng *r) { return (double)(aw_rng_next(r) >> 11) * 0x1.0p-53; }

/* Uniform integer in [0, n), n > 0 (rejection keeps it unbiased). */
static inline uint64_t aw_rng_below(aw_rng *r, uint64_t n)
{
    uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    uint64_t v;
    do v = aw_rng_next(r);
    while (v >= lim);
    return v % n;
}

/* Standard normal (Box-Muller, one value per call; simple and deterministic). */
static inline double aw_rng_normal(aw_rng *r)
{
    double u1 = aw_rng_uniform(r);
    double u2 = aw_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

#endif
