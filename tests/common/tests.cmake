aweq_add_test(test_common SOURCES common/test_common.c LIBS aweq_common)
