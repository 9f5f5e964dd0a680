# Text corpora and the seeded window draw (io/aw_corpus.c), and the fuzz
# replay of tests/fixtures/corpus. Included by tests/CMakeLists.txt (paths
# from tests/); fixtures are read through AWEQ_SOURCE_DIR.

aweq_add_test(test_corpus SOURCES io/test_corpus.c LIBS aweq_io LABELS io)

# The fuzz target as a replay driver: every file of corpus/reject must be
# refused (AW_ERR_CORPUS), every file of corpus/accept read whole, none may
# crash (sanitizers included).
set(AWEQ_CORPUS_FIXTURES ${PROJECT_SOURCE_DIR}/tests/fixtures/corpus)
add_executable(fuzz_corpus io/fuzz_corpus.c io/fuzz_replay.c)
target_link_libraries(fuzz_corpus PRIVATE aweq_io)
add_test(NAME corpus_fuzz_replay
         COMMAND fuzz_corpus --reject ${AWEQ_CORPUS_FIXTURES}/reject
                             --accept ${AWEQ_CORPUS_FIXTURES}/accept
         WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
set_tests_properties(corpus_fuzz_replay PROPERTIES ENVIRONMENT "${AWEQ_TEST_ENV}"
                     TIMEOUT 300 LABELS "unit;fuzz")

# libFuzzer build (clang only): cmake -DCMAKE_C_COMPILER=clang -DAWEQ_FUZZ=ON,
# then ./tests/fuzz_corpus_libfuzzer NEW_CORPUS_DIR tests/fixtures/corpus/accept
# tests/fixtures/corpus/reject (libFuzzer adds inputs to the first folder:
# never name the fixtures first)
option(AWEQ_FUZZ "Build the libFuzzer targets (clang)" OFF)
if(AWEQ_FUZZ AND CMAKE_C_COMPILER_ID MATCHES "Clang")
  # the reader's sources compiled in, so that libFuzzer's coverage sees them
  add_executable(fuzz_corpus_libfuzzer io/fuzz_corpus.c ${PROJECT_SOURCE_DIR}/io/aw_corpus.c
                 ${PROJECT_SOURCE_DIR}/common/aw_status.c)
  target_include_directories(fuzz_corpus_libfuzzer PRIVATE
                             ${PROJECT_SOURCE_DIR}/io ${PROJECT_SOURCE_DIR}/common)
  target_compile_definitions(fuzz_corpus_libfuzzer PRIVATE AWEQ_FUZZING=1)
  target_compile_options(fuzz_corpus_libfuzzer PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(fuzz_corpus_libfuzzer PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_corpus_libfuzzer PRIVATE PkgConfig::JANSSON zstd::libzstd_shared)
endif()
