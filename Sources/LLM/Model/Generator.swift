// Generator: greedy decoding on a Transformer with KV cache: one batched prefill of the prompt,
// then one token per step until a stop token or the token limit; and the same for several
// sequences at once (each step is one batched forward over the still-running sequences).
import Tensor

/// Greedy (argmax) decoding. Deterministic, so runs are comparable across modes and machines.
public struct Generator {
    public let transformer: Transformer

    public init(transformer: Transformer) { self.transformer = transformer }

    /// Generates up to `maxNewTokens` tokens after `prompt`; stops after emitting a token in
    /// `stopTokens` (that token is included in the result).
    public func greedy(prompt: [Int], maxNewTokens: Int, stopTokens: Set<Int>,
                       onToken: ((Int) -> Void)? = nil) -> [Int] {
        greedyBatch(prompts: [prompt], maxNewTokens: maxNewTokens, stopTokens: stopTokens,
                    onToken: onToken.map { f in { _, t in f(t) } })[0]
    }

    /// Greedy generation for several prompts in one batch. Prompts may differ in length; each
    /// sequence stops on its own, at a stop token or at its own limit (`limits[i]`, default
    /// `maxNewTokens`). A sequence with a constraint (`constraints[i]`) takes the best token its
    /// constraint allows at each step instead of the best token.
    public func greedyBatch(prompts: [[Int]], maxNewTokens: Int, stopTokens: Set<Int>, limits: [Int]? = nil,
                            constraints: [TokenConstraint?]? = nil,
                            onToken: ((Int, Int) -> Void)? = nil) -> [[Int]] {
        precondition(limits == nil || limits!.count == prompts.count, "one limit per prompt")
        precondition(constraints == nil || constraints!.count == prompts.count, "one constraint (or nil) per prompt")
        precondition(prompts.allSatisfy { !$0.isEmpty }, "empty prompt")
        let config = transformer.model.config
        let caches = prompts.map { KVCache(config: config, capacity: $0.count + maxNewTokens) }
        var outputs = Array(repeating: [Int](), count: prompts.count)
        guard maxNewTokens > 0 else { return outputs }
        var segments = prompts.enumerated().map { BatchSegment(sequence: $0.offset, tokens: $0.element) }
        while !segments.isEmpty {
            let out = transformer.forward(segments, caches: caches, logits: .lastOfEachSegment)
            var next = [BatchSegment]()
            for (i, s) in segments.enumerated() {
                let token: Int
                if let constraint = constraints?[s.sequence] {
                    token = constraint.bestAllowedToken(out.logits, row: i)
                    constraint.commit(token)
                } else {
                    token = Kernels.argmax(out.logits, row: i)
                }
                outputs[s.sequence].append(token)
                onToken?(s.sequence, token)
                let limit = min(maxNewTokens, limits?[s.sequence] ?? maxNewTokens)
                if !stopTokens.contains(token) && outputs[s.sequence].count < limit {
                    next.append(BatchSegment(sequence: s.sequence, tokens: [token]))
                }
            }
            segments = next
        }
        return outputs
    }
}
