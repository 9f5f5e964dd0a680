# CPU kernels against their float64 references (see test_kernels.c).
aweq_add_test(test_kernels SOURCES kernels/test_kernels.c kernels/kernels_ref.c
              LIBS aweq_kernels LABELS kernels)

# The same tests on the baseline x86-64 code: aw_kernels.c compiled again
# without its AVX2 clones (the library picks the clone at load time, so on an
# AVX2 machine test_kernels alone never runs the baseline loops).
aweq_add_test(test_kernels_baseline
              SOURCES kernels/test_kernels.c kernels/kernels_ref.c
                      ${PROJECT_SOURCE_DIR}/kernels/aw_kernels.c
              LIBS aweq_common PkgConfig::OPENBLAS LABELS kernels)
target_include_directories(test_kernels_baseline PRIVATE ${PROJECT_SOURCE_DIR}/kernels)
target_compile_definitions(test_kernels_baseline PRIVATE AW_NO_CLONES)
set_source_files_properties(${PROJECT_SOURCE_DIR}/kernels/aw_kernels.c
                            PROPERTIES COMPILE_OPTIONS "-O3;-fno-math-errno")
