"""The landing archive: its files and manifests, checked (`verify`) and copied (`backup`)."""
