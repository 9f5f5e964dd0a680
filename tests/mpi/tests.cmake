add_executable(mpi_test_comm mpi/mpi_test_comm.c)
target_link_libraries(mpi_test_comm PRIVATE aweq_mpi aweq_io)
aweq_add_mpi_test(mpi_comm_3 RANKS 3 COMMAND $<TARGET_FILE:mpi_test_comm>)
aweq_add_mpi_test(mpi_comm_1 RANKS 1 COMMAND $<TARGET_FILE:mpi_test_comm>)
