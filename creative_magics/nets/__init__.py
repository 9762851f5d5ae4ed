"""Networks we define ourselves (only the VGG19 feature extractor for style transfer)."""
