# bench_kernels: CPU kernels against memcpy and bare OpenBLAS (not a test).
add_executable(bench_kernels bench_kernels.c)
target_link_libraries(bench_kernels PRIVATE aweq_kernels)
