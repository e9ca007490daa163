package model

// InputWidth is the number of input features the signature declares, or 0
// when it has no [N,F] input.
func (s Signature) InputWidth() int {
	if len(s.Inputs) != 1 || len(s.Inputs[0].Shape) != 2 {
		return 0
	}
	return int(s.Inputs[0].Shape[1])
}
