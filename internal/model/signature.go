package model

// SignatureFor is the I/O signature of a model with inputs features:
// [N,inputs] float32 in, [N,NumOutputs] float32 out. A manifest's declared
// features fix inputs, so each major's format has its own width.
func SignatureFor(inputs int) Signature {
	return Signature{
		Inputs:  []TensorSpec{{Name: InputName, Type: "float32", Shape: []int64{-1, int64(inputs)}}},
		Outputs: []TensorSpec{{Name: OutputName, Type: "float32", Shape: []int64{-1, NumOutputs}}},
	}
}

// InputWidth is the number of input features the signature declares, or 0
// when it has no [N,F] input.
func (s Signature) InputWidth() int {
	if len(s.Inputs) != 1 || len(s.Inputs[0].Shape) != 2 {
		return 0
	}
	return int(s.Inputs[0].Shape[1])
}
