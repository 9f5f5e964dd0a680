# Slurm: a one-node cluster on this machine (slurm/local-cluster-start.sh),
# srun/mpirun/one rank/sbatch give the same checkpoint. Needs root; installs
# slurm-wlm and munge when missing; skipped (exit 77) where it cannot run.
aweq_add_script_test(slurm_local slurm/test_slurm.sh)
set_tests_properties(slurm_local PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 900 LABELS "slurm")
