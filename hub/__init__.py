"""The hub: subscribes to every agent's data, stores it, acknowledges only what is stored."""
