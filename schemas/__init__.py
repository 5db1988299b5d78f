"""clin_linker.schemas"""
