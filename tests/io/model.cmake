# Model description and calibration tokens (io/aw_config.c, io/aw_tokens.c).
# Paths are relative to tests/; fixtures are read through AWEQ_SOURCE_DIR.
aweq_add_test(test_config SOURCES io/test_config.c LIBS aweq_io LABELS io)
aweq_add_test(test_tokens SOURCES io/test_tokens.c LIBS aweq_io LABELS io)
