"""`make rehearsal`: the real profile's whole DAG on the CPU at the real shapes (`run`)."""
