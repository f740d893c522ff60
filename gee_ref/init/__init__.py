"""Layer 2. Initial values of the genetic encodings: the truncated normal of eq. 9 (``truncnorm``),
the encoding scale that gives W the Kaiming variance (``kaiming``) and the best rank-g encoding of
a dense weight, eq. 6-8 (``lowrank``). Pure array math: may import backend only."""
