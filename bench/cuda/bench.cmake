# bench_cuda: GPU timings of the CUDA kernels against D2D copies and bare
# cuBLAS, and per-block times of OPT-175B (see cuda/bench_cuda.cu). Not a
# test; exits 77 without a device. Built as bench/cuda/bench_cuda.
if(TARGET aweq_kernels_cuda)
  add_executable(bench_cuda cuda/bench_cuda.cu)
  target_link_libraries(bench_cuda PRIVATE aweq_kernels_cuda aweq_kernels aweq_common CUDA::cudart CUDA::cublas)
  set_target_properties(bench_cuda PROPERTIES CUDA_STANDARD 17
                        RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/cuda)
  target_compile_options(bench_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-Werror>)
endif()
