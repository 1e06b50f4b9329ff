"""kuksa.val.v2 gRPC (with the v1 calls kuksa-client still makes) over the signal broker."""

from anycar.api.grpc.server import GrpcServer

__all__ = ["GrpcServer"]
