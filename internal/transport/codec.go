package transport

import (
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// grpc-go answers a request it cannot decode (invalid UTF-8 in a string,
// malformed wire data) with INTERNAL, as if the server had failed. Such a
// request is the caller's mistake: requestCodec, the server's codec, decodes
// like grpc's proto codec but, when decoding fails, leaves the message empty
// with the failure recorded in an unknown field, and the interceptors of
// NewGRPCServer turn that into INVALID_ARGUMENT before any handler runs. A
// handler reached some other way sees an empty request, which every handler
// refuses.
type requestCodec struct{ encoding.CodecV2 }

// decodeFailureField is the unknown field number that carries the failure:
// the largest field number, which no message of the API uses.
const decodeFailureField = protowire.MaxValidNumber

func newRequestCodec() requestCodec {
	return requestCodec{encoding.GetCodecV2("proto")}
}

func (c requestCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.CodecV2.Unmarshal(data, v)
	m, ok := v.(proto.Message)
	if err == nil || !ok {
		return err
	}
	proto.Reset(m)
	b := protowire.AppendTag(nil, decodeFailureField, protowire.BytesType)
	b = protowire.AppendString(b, err.Error())
	m.ProtoReflect().SetUnknown(b)
	return nil
}

// decodeFailure returns INVALID_ARGUMENT for a request requestCodec could not
// decode, or nil.
func decodeFailure(req any) error {
	m, ok := req.(proto.Message)
	if !ok {
		return nil
	}
	b := m.ProtoReflect().GetUnknown()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil
		}
		b = b[n:]
		if num == decodeFailureField && typ == protowire.BytesType {
			why, n := protowire.ConsumeString(b)
			if n < 0 {
				return nil
			}
			return status.Error(codes.InvalidArgument, fmt.Sprintf("request is not a valid %s: %s (strings must be valid UTF-8)",
				m.ProtoReflect().Descriptor().FullName(), why))
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return nil
		}
		b = b[n:]
	}
	return nil
}
