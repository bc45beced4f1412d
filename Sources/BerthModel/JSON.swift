// The JSON value type and its parser arrive with the admission core.
