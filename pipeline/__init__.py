"""clin_linker.pipeline"""
