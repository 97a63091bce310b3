// TokenConstraint: the hook through which constrained decoding restricts what one sequence may
// generate. Greedy decoding asks it for the best allowed token of each step's logits and tells it
// which token was taken; the constraint itself (a grammar over the vocabulary) lives in a higher
// layer.
import Tensor

/// Restricts the tokens one sequence may generate.
public protocol TokenConstraint: AnyObject {
    /// The allowed token with the highest value in row `row` of `logits` (one score per
    /// vocabulary entry). When the constraint allows nothing but ending, it returns a stop token.
    func bestAllowedToken(_ logits: MatrixView, row: Int) -> Int
    /// Records that `token` was generated next.
    func commit(_ token: Int)
}
