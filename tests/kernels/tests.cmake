# CPU kernels against their float64 references (see test_kernels.c).
aweq_add_test(test_kernels SOURCES kernels/test_kernels.c kernels/kernels_ref.c
              LIBS aweq_kernels LABELS kernels)

# The LLaMA entries of the CPU kernel tables (aw_ops.h), plain and staged,
# against the aw_k_* kernels they wrap (see kernels/test_kernels_ops.c).
aweq_add_test(test_kernels_ops SOURCES kernels/test_kernels_ops.c kernels/kernels_ref.c
              LIBS aweq_kernels LABELS kernels)

# The same tests on the baseline x86-64 code: aw_kernels.c compiled again
# without its AVX2 clones (the library picks the clone at load time, so on an
# AVX2 machine test_kernels alone never runs the baseline loops).
aweq_add_test(test_kernels_baseline
              SOURCES kernels/test_kernels.c kernels/kernels_ref.c
                      ${PROJECT_SOURCE_DIR}/kernels/aw_kernels.c
                      ${PROJECT_SOURCE_DIR}/kernels/aw_gemm_i8.c
                      ${PROJECT_SOURCE_DIR}/kernels/aw_gemm_bf16.c
              LIBS aweq_common PkgConfig::OPENBLAS DNNL::dnnl OpenMP::OpenMP_C LABELS kernels)
target_include_directories(test_kernels_baseline PRIVATE ${PROJECT_SOURCE_DIR}/kernels)
target_compile_definitions(test_kernels_baseline PRIVATE AW_NO_CLONES)
set_source_files_properties(${PROJECT_SOURCE_DIR}/kernels/aw_kernels.c
                            ${PROJECT_SOURCE_DIR}/kernels/aw_gemm_i8.c
                            PROPERTIES COMPILE_OPTIONS "-O3;-fno-math-errno")

# The INT8 product's choice of path (oneDNN or the int16 loop) and its
# exactness on each: as is, with oneDNN held to its AVX2 kernels (which
# saturate: the self-test must reject them), and with OMP_NUM_THREADS set.
aweq_add_test(test_gemm_i8 SOURCES kernels/test_gemm_i8.c kernels/kernels_ref.c
              LIBS aweq_kernels OpenMP::OpenMP_C LABELS kernels)
foreach(variant avx2 omp1)
  add_test(NAME test_gemm_i8_${variant} COMMAND test_gemm_i8
           WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
  if(variant STREQUAL "avx2")
    set(extra "ONEDNN_MAX_CPU_ISA=AVX2")
  else()
    set(extra "OMP_NUM_THREADS=1")
  endif()
  set_tests_properties(test_gemm_i8_${variant} PROPERTIES ENVIRONMENT "${AWEQ_TEST_ENV};${extra}"
                       TIMEOUT 300 LABELS "unit;kernels")
endforeach()

# Low-bit weight kernels (RTN steps and codes, packing, Gram matrix, GPTQ)
# against their float64 references (see kernels/test_lowbit.c).
aweq_add_test(test_lowbit SOURCES kernels/test_lowbit.c kernels/lowbit_ref.c kernels/kernels_ref.c
              LIBS aweq_kernels LABELS kernels)

# Dynamic activation quantization, the grouped integer product and the kept
# channels (aw_actq.h) against float64 references, and the CPU tables'
# entries (see kernels/test_actq.c); again with oneDNN held to AVX2, so that
# the grouped product takes the int16 loop on packed blocks, and with another
# thread count (OMP_NUM_THREADS=3: other tiles per thread, the same bytes).
aweq_add_test(test_actq SOURCES kernels/test_actq.c kernels/kernels_ref.c
              LIBS aweq_kernels LABELS kernels)
foreach(variant avx2 omp3)
  add_test(NAME test_actq_${variant} COMMAND test_actq WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
  if(variant STREQUAL "avx2")
    set(extra "ONEDNN_MAX_CPU_ISA=AVX2")
  else()
    set(extra "OMP_NUM_THREADS=3")
  endif()
  set_tests_properties(test_actq_${variant} PROPERTIES ENVIRONMENT "${AWEQ_TEST_ENV};${extra}"
                       TIMEOUT 300 LABELS "unit;kernels")
endforeach()

# The must-show of integer activations: one realistic layer (W4A4 g128, W4A4
# per-token, W4A8 per-token) through the program's forward (aw_qlinear_ops),
# recomputed in float64 by a pure-Python script: codes and steps exact,
# output within 1e-6 relative (see kernels/actq_layer.c, kernels/actq_ref.py).
find_program(AWEQ_PYTHON3 python3)
add_executable(actq_layer kernels/actq_layer.c kernels/kernels_ref.c)
target_link_libraries(actq_layer PRIVATE aweq_pipeline)
target_include_directories(actq_layer PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/kernels)
if(AWEQ_PYTHON3)
  add_test(NAME test_actq_ref
           COMMAND ${AWEQ_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/kernels/actq_ref.py
                   $<TARGET_FILE:actq_layer> ${CMAKE_CURRENT_BINARY_DIR}
           WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
  set_tests_properties(test_actq_ref PROPERTIES ENVIRONMENT "${AWEQ_TEST_ENV}" TIMEOUT 300
                       LABELS "unit;kernels")
endif()
