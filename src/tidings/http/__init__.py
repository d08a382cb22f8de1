"""HTTP plumbing: middleware, problem+json answers, OpenAPI error documentation."""
