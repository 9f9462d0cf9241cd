/// Process-wide settings of the native runtime.
public enum Runtime {
    /// "openblas" when OpenBLAS was found and is used for matrix products, else "builtin".
    public static var blasBackend: String { GEMM.backend }
    /// Which copy of the row kernels runs: "haswell" (AVX2 + FMA) or "baseline".
    public static var kernels: String { RowKernels.variant.rawValue }

    /// Threads a single large operator (matrix product, convolution) may use: the caller and
    /// `count - 1` workers.
    public static func setIntraOpThreads(_ count: Int) {
        Parallel.threads = max(1, count)
    }
}
