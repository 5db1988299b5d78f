"""clin_linker.beam_jobs"""
