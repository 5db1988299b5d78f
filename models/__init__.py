"""clin_linker.models"""
