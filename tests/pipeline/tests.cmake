aweq_add_test(test_pipeline SOURCES pipeline/test_pipeline.c LIBS aweq_pipeline)
aweq_add_test(test_report SOURCES pipeline/test_report.c LIBS aweq_pipeline)
# the family descriptors: tensor names, shapes, parameter counts (pipeline/arch)
aweq_add_test(test_arch SOURCES pipeline/test_arch.c LIBS aweq_pipeline)
