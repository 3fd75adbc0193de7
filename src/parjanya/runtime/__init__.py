"""Running the whole system on one machine: an embedded broker and supervised child processes."""
