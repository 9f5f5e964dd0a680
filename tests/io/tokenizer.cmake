# The tokenizer (io/aw_tokenizer.c) against Hugging Face's ids, and the fuzz
# replay of its must-reject folders. Included by tests/CMakeLists.txt (paths
# from tests/); fixtures: tests/fixtures/make_tokenizer_fixtures.py.
# One source, four programs (TK_GROUP): GPT-2 and OPT folders, GPT-2's
# tokenizer.json, the LLaMA forms and threads, the refusals.
set(AWEQ_TOK_GROUPS gpt2_opt gpt2_json llama refuse)
foreach(i RANGE 1 4)
  math(EXPR k "${i} - 1")
  list(GET AWEQ_TOK_GROUPS ${k} g)
  aweq_add_test(test_tokenizer_${g} SOURCES io/test_tokenizer.c LIBS aweq_io Threads::Threads
                LABELS io)
  target_compile_definitions(test_tokenizer_${g} PRIVATE TK_GROUP=${i})
endforeach()

# The fuzz target as a replay driver: every reject/ folder refused, the
# small accepted folders opened and run over the must-match text, every
# file fed to the fuzz entry point; none may crash (sanitizers included).
set(AWEQ_TOK_FIXTURES ${PROJECT_SOURCE_DIR}/tests/fixtures/tokenizer)
add_executable(fuzz_tokenizer io/fuzz_tokenizer.c)
target_link_libraries(fuzz_tokenizer PRIVATE aweq_io)
add_test(NAME tokenizer_fuzz_replay
         COMMAND fuzz_tokenizer
                 --reject-dirs ${AWEQ_TOK_FIXTURES}/reject
                 --accept-dir ${AWEQ_TOK_FIXTURES}/llama-norm
                 --accept-dir ${AWEQ_TOK_FIXTURES}/llama-meta
                 --accept-dir ${AWEQ_TOK_FIXTURES}/llama-meta-split
                 --any ${AWEQ_TOK_FIXTURES}/hard_cases.txt
                       ${AWEQ_TOK_FIXTURES}/llama-meta/tokenizer.json
                       ${AWEQ_TOK_FIXTURES}/fuzz
         WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
set_tests_properties(tokenizer_fuzz_replay PROPERTIES ENVIRONMENT "${AWEQ_TEST_ENV}"
                     TIMEOUT 300 LABELS "unit;fuzz")

# libFuzzer build (clang, -DAWEQ_FUZZ=ON): ./tests/fuzz_tokenizer_libfuzzer NEW_DIR
# tests/fixtures/tokenizer/fuzz (never name the fixtures first: libFuzzer
# writes to the first folder)
if(AWEQ_FUZZ AND CMAKE_C_COMPILER_ID MATCHES "Clang")
  add_executable(fuzz_tokenizer_libfuzzer io/fuzz_tokenizer.c
                 ${PROJECT_SOURCE_DIR}/io/aw_tokenizer.c ${PROJECT_SOURCE_DIR}/io/aw_unicode.c
                 ${PROJECT_SOURCE_DIR}/io/aw_fs.c ${PROJECT_SOURCE_DIR}/common/aw_status.c)
  target_include_directories(fuzz_tokenizer_libfuzzer PRIVATE
                             ${PROJECT_SOURCE_DIR}/io ${PROJECT_SOURCE_DIR}/common)
  target_compile_definitions(fuzz_tokenizer_libfuzzer PRIVATE AWEQ_FUZZING=1)
  target_compile_options(fuzz_tokenizer_libfuzzer PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(fuzz_tokenizer_libfuzzer PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_tokenizer_libfuzzer PRIVATE PkgConfig::JANSSON)
endif()
