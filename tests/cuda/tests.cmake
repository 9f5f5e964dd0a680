# CUDA kernels against the CPU kernels (see cuda/test_cuda_kernels.c). Only
# when the CUDA backend is built; on a machine without a device the program
# prints "skipped: no CUDA device (<reason>)" and exits 77, which CTest shows
# as skipped. Not built with AWEQ_CUDA=OFF (the sanitizer build).
if(TARGET aweq_kernels_cuda)
  add_executable(test_cuda_kernels cuda/test_cuda_kernels.c kernels/kernels_ref.c)
  target_include_directories(test_cuda_kernels PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/kernels)
  target_link_libraries(test_cuda_kernels PRIVATE aweq_kernels_cuda aweq_kernels aweq_common)
  add_test(NAME test_cuda_kernels COMMAND test_cuda_kernels
           WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
  set_tests_properties(test_cuda_kernels PROPERTIES ENVIRONMENT "${AWEQ_TEST_ENV}" TIMEOUT 600
                       SKIP_RETURN_CODE 77 LABELS "unit;kernels;cuda")
endif()

# The low-bit and quantization entries of the CUDA ops table (gram_accum,
# dequant_groups, widen .. gptq) against the CPU table (see cuda/test_lowbit_cuda.c); skips (77) without a
# device, like test_cuda_kernels.
if(TARGET aweq_kernels_cuda)
  add_executable(test_lowbit_cuda cuda/test_lowbit_cuda.c kernels/kernels_ref.c)
  target_include_directories(test_lowbit_cuda PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/kernels)
  target_link_libraries(test_lowbit_cuda PRIVATE aweq_kernels_cuda aweq_kernels aweq_common)
  add_test(NAME test_lowbit_cuda COMMAND test_lowbit_cuda WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
  set_tests_properties(test_lowbit_cuda PROPERTIES ENVIRONMENT "${AWEQ_TEST_ENV}" TIMEOUT 300
                       SKIP_RETURN_CODE 77 LABELS "unit;kernels;cuda")
endif()

# The dynamic activation entries of the CUDA ops table (act_quant ..
# add_linear) against the CPU table (see cuda/test_actq_cuda.c); skips (77)
# without a device.
if(TARGET aweq_kernels_cuda)
  add_executable(test_actq_cuda cuda/test_actq_cuda.c kernels/kernels_ref.c)
  target_include_directories(test_actq_cuda PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/kernels)
  target_link_libraries(test_actq_cuda PRIVATE aweq_kernels_cuda aweq_kernels aweq_common)
  add_test(NAME test_actq_cuda COMMAND test_actq_cuda WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
  set_tests_properties(test_actq_cuda PROPERTIES ENVIRONMENT "${AWEQ_TEST_ENV}" TIMEOUT 300
                       SKIP_RETURN_CODE 77 LABELS "unit;kernels;cuda")
endif()
