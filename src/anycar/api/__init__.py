"""The standard APIs apps use: VISS v2, kuksa.val gRPC, a REST management API; shared access control."""
