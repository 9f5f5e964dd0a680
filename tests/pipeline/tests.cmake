aweq_add_test(test_pipeline SOURCES pipeline/test_pipeline.c LIBS aweq_pipeline)
