aweq_add_test(test_pipeline SOURCES pipeline/test_pipeline.c LIBS aweq_pipeline)
aweq_add_test(test_report SOURCES pipeline/test_report.c LIBS aweq_pipeline)
# the family descriptors: tensor names, shapes, parameter counts (pipeline/arch)
aweq_add_test(test_arch SOURCES pipeline/test_arch.c LIBS aweq_pipeline)
# the weight-only methods: rtn, smoothquant, aweq, awq, aweq+search, gptq at low bit widths
aweq_add_test(test_quant_wo SOURCES pipeline/test_quant_wo.c LIBS aweq_pipeline)
# weight-only checkpoints (pack-quantized): writer, shards, eval reader,
# files written by compressed-tensors 0.20.1 (tests/data/ct020)
aweq_add_test(test_lowbit_ckpt SOURCES pipeline/test_lowbit_ckpt.c LIBS aweq_pipeline)
# dynamic activations (W4A4 ...), kept channels, the statistics' token sample
aweq_add_test(test_quant_act SOURCES pipeline/test_quant_act.c LIBS aweq_pipeline)
