"""The machine around the model: `medalist doctor`, `medalist docker`, `medalist cost`."""
