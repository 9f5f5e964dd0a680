# Safetensors reader/writer, model folders, and the fuzz replay of the
# must-reject corpus. Included by tests/CMakeLists.txt (paths from tests/).

aweq_add_test(test_safetensors SOURCES io/test_safetensors.c LIBS aweq_io LABELS io)
aweq_add_test(test_model_files SOURCES io/test_model_files.c LIBS aweq_io LABELS io)

# The fuzz target as a replay driver: every st-reject file must be refused,
# every good fixture accepted, none may crash (sanitizers included).
set(AWEQ_FIXTURES ${PROJECT_SOURCE_DIR}/tests/fixtures)
add_executable(fuzz_safetensors io/fuzz_safetensors.c io/fuzz_replay.c)
target_link_libraries(fuzz_safetensors PRIVATE aweq_io)
add_test(NAME safetensors_fuzz_replay
         COMMAND fuzz_safetensors
                 --reject ${AWEQ_FIXTURES}/st-reject
                 --accept ${AWEQ_FIXTURES}/reference.safetensors
                          ${AWEQ_FIXTURES}/escapes.safetensors
                          ${AWEQ_FIXTURES}/no_tensors.safetensors
         WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
set_tests_properties(safetensors_fuzz_replay PROPERTIES ENVIRONMENT "${AWEQ_TEST_ENV}"
                     TIMEOUT 300 LABELS "unit;fuzz")

# libFuzzer build (clang only): cmake -DCMAKE_C_COMPILER=clang -DAWEQ_FUZZ=ON,
# then ./tests/fuzz_safetensors_libfuzzer NEW_CORPUS_DIR tests/fixtures/st-reject
# (libFuzzer adds inputs to the first folder: never name the fixtures first)
option(AWEQ_FUZZ "Build the libFuzzer targets (clang)" OFF)
if(AWEQ_FUZZ AND CMAKE_C_COMPILER_ID MATCHES "Clang")
  # the parser's sources compiled in, so that libFuzzer's coverage sees them
  add_executable(fuzz_safetensors_libfuzzer io/fuzz_safetensors.c
                 ${PROJECT_SOURCE_DIR}/io/aw_safetensors.c ${PROJECT_SOURCE_DIR}/io/aw_fs.c
                 ${PROJECT_SOURCE_DIR}/common/aw_status.c ${PROJECT_SOURCE_DIR}/common/aw_dtype.c)
  target_include_directories(fuzz_safetensors_libfuzzer PRIVATE
                             ${PROJECT_SOURCE_DIR}/io ${PROJECT_SOURCE_DIR}/common)
  target_compile_definitions(fuzz_safetensors_libfuzzer PRIVATE AWEQ_FUZZING=1)
  target_compile_options(fuzz_safetensors_libfuzzer PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(fuzz_safetensors_libfuzzer PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_safetensors_libfuzzer PRIVATE PkgConfig::JANSSON)
endif()
