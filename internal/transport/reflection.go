package transport

import (
	_ "embed"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/reflection"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

// descriptorSet is api/proto/recommendation WITH its comments, written by
//
//	buf build --path api/proto/recommendation --as-file-descriptor-set -o internal/transport/recommendation.binpb
//
// (scripts/check-generated.sh checks it is current). The descriptors
// protoc-gen-go compiles into the .pb.go files have their comments stripped,
// so server reflection serves these instead and `grpcurl describe` shows the
// units and ranges documented in the .proto files.
//
//go:embed recommendation.binpb
var descriptorSet []byte

// commentedFiles parses descriptorSet.
func commentedFiles() (*protoregistry.Files, error) {
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(descriptorSet, &set); err != nil {
		return nil, fmt.Errorf("transport: embedded descriptor set: %w", err)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		return nil, fmt.Errorf("transport: embedded descriptor set: %w", err)
	}
	return files, nil
}

// resolver looks descriptors up in the commented files first and in the
// descriptors linked into the binary (health, reflection, …) second.
type resolver struct {
	commented *protoregistry.Files
}

func (r resolver) FindFileByPath(path string) (protoreflect.FileDescriptor, error) {
	if r.commented != nil {
		if fd, err := r.commented.FindFileByPath(path); err == nil {
			return fd, nil
		}
	}
	return protoregistry.GlobalFiles.FindFileByPath(path)
}

func (r resolver) FindDescriptorByName(name protoreflect.FullName) (protoreflect.Descriptor, error) {
	if r.commented != nil {
		if d, err := r.commented.FindDescriptorByName(name); err == nil {
			return d, nil
		}
	}
	return protoregistry.GlobalFiles.FindDescriptorByName(name)
}

// registerReflection registers server reflection (v1 and v1alpha, as
// reflection.Register does) on s, answering from the commented descriptors.
// If they cannot be parsed it falls back to the compiled-in ones and returns
// the error for the caller to log.
func registerReflection(s *grpc.Server) error {
	files, err := commentedFiles()
	opts := reflection.ServerOptions{Services: s, DescriptorResolver: resolver{commented: files}}
	reflectionv1.RegisterServerReflectionServer(s, reflection.NewServerV1(opts))
	reflectionv1alpha.RegisterServerReflectionServer(s, reflection.NewServer(opts))
	return err
}
