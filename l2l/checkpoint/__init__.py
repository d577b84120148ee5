"""The .l2l checkpoint format, compatible with DeepMind's and LOIS's files."""
