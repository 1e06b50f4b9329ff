"""Request bytes that are not the message a method takes get ``INVALID_ARGUMENT``, not ``UNKNOWN``.

grpcio decodes each request before our code runs; a corrupt one raises ``DecodeError`` inside
grpcio, which answers ``UNKNOWN: Unexpected <class 'DecodeError'>``. This interceptor moves the
decoding into the handler, where a failure is a clear client error, for every method of every
service (unary and streaming alike).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

Decode = Callable[[bytes], Any]


async def _decode(decode: Decode, raw: bytes, method: str, context: grpc.aio.ServicerContext) -> Any:
    try:
        return decode(raw)
    except (DecodeError, ValueError, TypeError) as exc:
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT, f"{method}: the request is not a valid message: {exc}"
        )
        raise AssertionError("unreachable") from None  # context.abort raises


def _requests(decode: Decode, raw: AsyncIterator[bytes], method: str, context: Any) -> AsyncIterator[Any]:
    async def each() -> AsyncIterator[Any]:
        async for item in raw:
            yield await _decode(decode, item, method, context)

    return each()


class StrictDecoding(grpc.aio.ServerInterceptor):
    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or handler.request_deserializer is None:
            return handler
        decode: Decode = handler.request_deserializer
        method: str = details.method
        out = handler.response_serializer
        if handler.unary_unary is not None:
            inner_uu = handler.unary_unary

            async def unary_unary(raw: bytes, context: Any) -> Any:
                return await inner_uu(await _decode(decode, raw, method, context), context)

            return grpc.unary_unary_rpc_method_handler(unary_unary, response_serializer=out)
        if handler.unary_stream is not None:
            inner_us = handler.unary_stream

            async def unary_stream(raw: bytes, context: Any) -> AsyncIterator[Any]:
                async for reply in inner_us(await _decode(decode, raw, method, context), context):
                    yield reply

            return grpc.unary_stream_rpc_method_handler(unary_stream, response_serializer=out)
        if handler.stream_unary is not None:
            inner_su = handler.stream_unary

            async def stream_unary(raw: AsyncIterator[bytes], context: Any) -> Any:
                return await inner_su(_requests(decode, raw, method, context), context)

            return grpc.stream_unary_rpc_method_handler(stream_unary, response_serializer=out)
        inner_ss = handler.stream_stream

        async def stream_stream(raw: AsyncIterator[bytes], context: Any) -> AsyncIterator[Any]:
            async for reply in inner_ss(_requests(decode, raw, method, context), context):
                yield reply

        return grpc.stream_stream_rpc_method_handler(stream_stream, response_serializer=out)
