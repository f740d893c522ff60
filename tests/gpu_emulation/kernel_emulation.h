// Test scaffolding: lets g++ compile gee_ref's .cu kernels as plain C++ (see
// tests/gpu_emulation/kernel_emulation.py). Force-included before the kernel source (g++ -include).
//
// A CUDA launch runs one kernel body per (block, thread). Here the four built-in
// index variables are ordinary globals that the test sets before each call, so the
// host runs the "threads" one after another; every kernel's grid-stride loop then
// visits its share of the elements, and all of them together cover every element.
#include <cmath>

using std::atan;
using std::exp;
using std::fabs;

#define __global__
#define __device__
#define __forceinline__ inline

struct emulated_dim3 { unsigned int x, y, z; };

emulated_dim3 blockIdx = {0, 0, 0}, threadIdx = {0, 0, 0};
emulated_dim3 blockDim = {1, 1, 1}, gridDim = {1, 1, 1};

extern "C" void emulation_set_thread(unsigned int block, unsigned int thread,
                                     unsigned int blocks, unsigned int threads)
{
    blockIdx.x = block;
    threadIdx.x = thread;
    gridDim.x = blocks;
    blockDim.x = threads;
}
