aweq_add_test(test_eval SOURCES pipeline/test_eval.c LIBS aweq_pipeline)
