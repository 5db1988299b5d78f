"""Clinical NER: OMOP-domain BIO tagger (training in train/export, torch-free run time in runtime)."""
