"""Benchmarks of the training step, the data pipeline and the in-training kNN (``mimae bench``): throughput in
(image, mask) samples/s, the step's split, FLOPs from torch's FLOP counter, MFU against a matmul measured in the
same process, and side-by-side ratios timed in alternating rounds."""
