# The planner: partitions, layouts, refusals with their suggestions, the
# costs of the real OPT shapes and their plans (printed in the output).
aweq_add_test(test_sched SOURCES schedulers/test_sched.c LIBS aweq_sched aweq_pipeline)
