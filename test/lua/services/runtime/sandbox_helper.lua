return { value = "loaded" }
