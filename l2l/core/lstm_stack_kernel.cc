// Two TensorFlow ops for lstm_stack.step: the forward pass of every LSTM
// cell of the stack and of the output layer, and its gradient, over blocks
// of coordinates.
//
// TensorFlow runs the stack as a few dozen ops, each reading and writing
// whole [features, coordinates] tensors; the step is then bound by memory
// traffic and per-op overhead, not by its matmuls. Here each thread takes
// a block of coordinates through the whole stack while it sits in cache.
// The gradient recomputes a block's gates in cache rather than reading
// them from memory: one forward pass more, but no activations kept
// between the passes. The formula is lstm_stack.py's (Sonnet 1's LSTM);
// the activations are Eigen's, as TensorFlow's Sigmoid and Tanh kernels
// compute them. The matrix products are in lstm_stack_products.cc.
//
// L2lLstmStack's inputs: rows [width, n] (feature_major) or [n, width];
// per layer its hidden and cell state, [size, n] or [n, size]; per layer
// its gate weights with the biases as the last row
// (lstm_stack._with_bias), [width + size + 1, 4 size], gates ordered
// (i, j, f, o); the output layer's weights [size, out] and bias [out]. Its
// outputs: the output, then each layer's next hidden and cell state, laid
// out as the inputs.
//
// L2lLstmStackGrad's inputs: the same, less the output bias, then the
// gradients of L2lLstmStack's outputs. Its outputs: the gradients of the
// rows and of each state, of each layer's gate weights [width + size,
// 4 size] and biases [4 size], and of the output layer's weights and bias.

#include <algorithm>
#include <vector>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "lstm_stack_products.h"
#include "tensorflow/core/platform/threadpool.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace l2l {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

using ConstView = Eigen::Map<const RowMajor, 0, Eigen::OuterStride<>>;
using View = Eigen::Map<RowMajor, 0, Eigen::OuterStride<>>;
using Weights = Eigen::Map<const RowMajor>;

// Coordinates a thread takes through the stack at once: enough for the
// matmuls to run at speed, few enough that a block's gates stay in cache.
constexpr int64_t kBlock = 128;

// The gradient sums its weight gradients per chunk of blocks, then the
// chunks in order: as many chunks as this at most, whatever the number of
// threads, so that the sums, and so training, are the same from run to run.
constexpr int64_t kMaxChunks = 64;

// Every block is computed feature-major, [features, count], in the
// thread's own buffers: each gate's rows are contiguous, and the products
// run on memory in cache. Both layouts are row-major tensors, so a block of
// coordinates is a contiguous-row view in either: [features, count] in a
// feature-major tensor [features, n], [count, features] in a
// coordinate-major one [n, features]. `Layout` copies a block in, or out,
// transposing a coordinate-major one.
class Layout {
 public:
  Layout(bool feature_major, int64_t n)
      : feature_major_(feature_major), n_(n) {}

  // Copies the block of `tensor` that starts at coordinate `start` into
  // `to`, [features, count].
  template <typename To>
  void Load(const Tensor& tensor, int64_t start, To&& to) const {
    const float* base = tensor.flat<float>().data();
    if (feature_major_) {
      to = ConstView(base + start, to.rows(), to.cols(),
                     Eigen::OuterStride<>(n_));
    } else {
      to = ConstView(base + start * to.rows(), to.cols(), to.rows(),
                     Eigen::OuterStride<>(to.rows()))
               .transpose();
    }
  }

  // Writes a block, [features, count], into `tensor` from coordinate
  // `start` on.
  template <typename Values>
  void Store(Tensor* tensor, int64_t start, const Values& values) const {
    float* base = tensor->flat<float>().data();
    if (feature_major_) {
      View(base + start, values.rows(), values.cols(),
           Eigen::OuterStride<>(n_)) = values;
    } else {
      View(base + start * values.rows(), values.cols(), values.rows(),
           Eigen::OuterStride<>(values.rows())) = values.transpose();
    }
  }

 private:
  bool feature_major_;
  int64_t n_;  // the tensors' coordinates
};

// What both ops read of their inputs, checked.
struct Stack {
  int num_layers = 0;
  int64_t n = 0;
  int64_t width = 0;
  int64_t out = 0;
  std::vector<int64_t> sizes;  // per layer
  std::vector<int64_t> ins;    // per layer: the width of its input rows

  // Input indices.
  int State(int layer, bool cell) const { return 1 + 2 * layer + cell; }
  int GateWeights(int layer) const { return 1 + 2 * num_layers + layer; }
  int OutputWeights() const { return 1 + 3 * num_layers; }

  // The width of the output layer's input: the last layer's size, or with
  // no layers the rows' width.
  int64_t TopSize() const { return num_layers ? sizes.back() : width; }

  // Each block's FLOPs in a forward pass: its matmuls and activations.
  int64_t BlockCost() const {
    int64_t cost = 2 * out * TopSize();
    for (int layer = 0; layer < num_layers; ++layer) {
      cost += 2 * (ins[layer] + sizes[layer] + 1) * 4 * sizes[layer] +
              20 * sizes[layer];
    }
    return cost * kBlock;
  }
};

TensorShape Shape(bool feature_major, int64_t features, int64_t n) {
  return feature_major ? TensorShape({features, n})
                       : TensorShape({n, features});
}

// Reads and checks the sizes of the stack from the inputs `L2lLstmStack`
// and `L2lLstmStackGrad` share.
::tensorflow::Status ReadStack(OpKernelContext* context, int num_layers,
                               bool feature_major, Stack* stack) {
  using ::tensorflow::errors::InvalidArgument;
  stack->num_layers = num_layers;
  const Tensor& rows = context->input(0);
  if (rows.dims() != 2) {
    return InvalidArgument("rows must be a matrix, got shape ",
                           rows.shape().DebugString());
  }
  stack->n = rows.dim_size(feature_major ? 1 : 0);
  stack->width = rows.dim_size(feature_major ? 0 : 1);
  int64_t below = stack->width;
  for (int layer = 0; layer < num_layers; ++layer) {
    const Tensor& weights = context->input(stack->GateWeights(layer));
    if (weights.dims() != 2 || weights.dim_size(1) % 4 != 0) {
      return InvalidArgument("layer ", layer,
                             "'s gate weights must be "
                             "[inputs + size + 1, 4 size], got shape ",
                             weights.shape().DebugString());
    }
    const int64_t size = weights.dim_size(1) / 4;
    if (weights.dim_size(0) != below + size + 1) {
      return InvalidArgument("layer ", layer, "'s gate weights have ",
                             weights.dim_size(0), " rows, expected ",
                             below + size + 1);
    }
    for (bool cell : {false, true}) {
      const TensorShape& shape =
          context->input(stack->State(layer, cell)).shape();
      if (shape != Shape(feature_major, size, stack->n)) {
        return InvalidArgument(
            "layer ", layer, "'s state has shape ", shape.DebugString(),
            ", expected ", Shape(feature_major, size, stack->n).DebugString());
      }
    }
    stack->sizes.push_back(size);
    stack->ins.push_back(below);
    below = size;
  }
  const Tensor& output_weights = context->input(stack->OutputWeights());
  if (output_weights.dims() != 2 || output_weights.dim_size(0) != below) {
    return InvalidArgument("output weights have shape ",
                           output_weights.shape().DebugString(), ", expected [",
                           below, ", outputs]");
  }
  stack->out = output_weights.dim_size(1);
  return ::tensorflow::OkStatus();
}

// A layer's gate weights, [in + size + 1, 4 size].
inline Weights GateWeights(OpKernelContext* context, const Stack& stack,
                           int layer) {
  return Weights(context->input(stack.GateWeights(layer)).flat<float>().data(),
                 stack.ins[layer] + stack.sizes[layer] + 1,
                 4 * stack.sizes[layer]);
}

// The output layer's weights, [top size, out].
inline Weights OutputWeights(OpKernelContext* context, const Stack& stack) {
  return Weights(context->input(stack.OutputWeights()).flat<float>().data(),
                 stack.TopSize(), stack.out);
}

// One layer's forward pass over a block of coordinates, feature-major.
struct LayerPass {
  // Its input x, hidden state h and a row of ones, [in + size + 1, count]:
  // one product with the gate weights (biases last) gives the gates, and
  // one more gives their weights' gradient, the biases' included.
  RowMajor stacked;
  // Its cell state, [size, count].
  RowMajor cell;
  // Its gates (i, j, f, o) [4 size, count]; the forget bias is in the
  // biases. With `keep_activations`, they become the activations the
  // gradient reads, sigmoid(i), tanh(j), sigmoid(f), sigmoid(o), and
  // next_cell_tanh is kept too.
  RowMajor gates;
  // [size, count] each.
  RowMajor next_cell, next_cell_tanh, next_hidden;

  // Sizes `stacked` and `cell` for Run, and sets the row of ones.
  void Resize(int64_t in, int64_t size, int64_t count) {
    stacked.resize(in + size + 1, count);
    stacked.bottomRows(1).setOnes();
    cell.resize(size, count);
  }

  // Runs the layer once `stacked` and `cell` hold its inputs.
  void Run(const Weights& weights, bool keep_activations) {
    const int64_t size = cell.rows();
    SetTransposedProduct(weights, stacked, &gates);
    auto input_gate = gates.topRows(size).array();
    auto candidate = gates.middleRows(size, size).array();
    auto forget_gate = gates.middleRows(2 * size, size).array();
    auto output_gate = gates.bottomRows(size).array();
    if (!keep_activations) {
      // One pass for the next cell, one for the next hidden state.
      next_cell = (forget_gate.logistic() * cell.array() +
                   input_gate.logistic() * candidate.tanh())
                      .matrix();
      next_hidden =
          (output_gate.logistic() * next_cell.array().tanh()).matrix();
      return;
    }
    input_gate = input_gate.logistic();
    candidate = candidate.tanh();
    gates.bottomRows(2 * size) = gates.bottomRows(2 * size).array().logistic();
    next_cell = (forget_gate * cell.array() + input_gate * candidate).matrix();
    next_cell_tanh = next_cell.array().tanh().matrix();
    next_hidden = (output_gate * next_cell_tanh.array()).matrix();
  }
};

// What both ops' kernels take from their attributes.
class StackOpKernel : public OpKernel {
 public:
  explicit StackOpKernel(OpKernelConstruction* context) : OpKernel(context) {
    OP_REQUIRES_OK(context, context->GetAttr("num_layers", &num_layers_));
    int num_state;
    OP_REQUIRES_OK(context, context->GetAttr("num_state", &num_state));
    OP_REQUIRES(context, num_state == 2 * num_layers_,
                ::tensorflow::errors::InvalidArgument(
                    "expected a hidden and a cell state per layer"));
    OP_REQUIRES_OK(context, context->GetAttr("feature_major", &feature_major_));
  }

 protected:
  // Runs the stack's forward pass over a block of coordinates, one
  // LayerPass per layer. Returns the output layer's input, [top size,
  // count]: the last layer's next hidden state or, with no layers, the
  // input rows, loaded into `rows`.
  static const RowMajor& Forward(OpKernelContext* context, const Stack& stack,
                                 const Layout& layout, int64_t start,
                                 int64_t count, bool keep_activations,
                                 RowMajor& rows,
                                 std::vector<LayerPass>& passes) {
    passes.resize(stack.num_layers);
    for (int layer = 0; layer < stack.num_layers; ++layer) {
      LayerPass& pass = passes[layer];
      const int64_t in = stack.ins[layer], size = stack.sizes[layer];
      pass.Resize(in, size, count);
      if (layer == 0) {
        layout.Load(context->input(0), start, pass.stacked.topRows(in));
      } else {
        pass.stacked.topRows(in) = passes[layer - 1].next_hidden;
      }
      layout.Load(context->input(stack.State(layer, false)), start,
                  pass.stacked.middleRows(in, size));
      layout.Load(context->input(stack.State(layer, true)), start, pass.cell);
      pass.Run(GateWeights(context, stack, layer), keep_activations);
    }
    if (stack.num_layers) return passes.back().next_hidden;
    rows.resize(stack.width, count);
    layout.Load(context->input(0), start, rows);
    return rows;
  }

  int num_layers_;
  bool feature_major_;
};

class LstmStackOp : public StackOpKernel {
 public:
  using StackOpKernel::StackOpKernel;

  void Compute(OpKernelContext* context) override {
    Stack stack;
    OP_REQUIRES_OK(context,
                   ReadStack(context, num_layers_, feature_major_, &stack));
    Tensor* output = nullptr;
    OP_REQUIRES_OK(context,
                   context->allocate_output(
                       0, Shape(feature_major_, stack.out, stack.n), &output));
    std::vector<Tensor*> next_state(2 * num_layers_);
    for (int i = 0; i < 2 * num_layers_; ++i) {
      OP_REQUIRES_OK(context,
                     context->allocate_output(
                         1 + i, context->input(1 + i).shape(), &next_state[i]));
    }
    Run(context, stack, output, next_state);
  }

 private:
  void Run(OpKernelContext* context, const Stack& stack, Tensor* output,
           const std::vector<Tensor*>& next_state) {
    const Layout layout(feature_major_, stack.n);
    Eigen::Map<const Eigen::VectorXf> output_bias(
        context->input(stack.OutputWeights() + 1).flat<float>().data(),
        stack.out);
    auto run_blocks = [&](int64_t first_block, int64_t end_block) {
      std::vector<LayerPass> passes;
      RowMajor rows, result;
      for (int64_t block = first_block; block < end_block; ++block) {
        const int64_t start = block * kBlock;
        const int64_t count = std::min(kBlock, stack.n - start);
        const RowMajor& top =
            Forward(context, stack, layout, start, count, false, rows, passes);
        for (int layer = 0; layer < num_layers_; ++layer) {
          layout.Store(next_state[2 * layer], start, passes[layer].next_hidden);
          layout.Store(next_state[2 * layer + 1], start,
                       passes[layer].next_cell);
        }
        SetTransposedProduct(OutputWeights(context, stack), top, &result);
        result.colwise() += output_bias;
        layout.Store(output, start, result);
      }
    };
    auto workers = context->device()->tensorflow_cpu_worker_threads();
    workers->workers->ParallelFor((stack.n + kBlock - 1) / kBlock,
                                  stack.BlockCost(), run_blocks);
  }
};

class LstmStackGradOp : public StackOpKernel {
 public:
  using StackOpKernel::StackOpKernel;

  void Compute(OpKernelContext* context) override {
    using ::tensorflow::errors::InvalidArgument;
    Stack stack;
    OP_REQUIRES_OK(context,
                   ReadStack(context, num_layers_, feature_major_, &stack));
    const int d_output = stack.OutputWeights() + 1;
    OP_REQUIRES(
        context,
        context->input(d_output).shape() ==
            Shape(feature_major_, stack.out, stack.n),
        InvalidArgument(
            "the output's gradient has shape ",
            context->input(d_output).shape().DebugString(), ", expected ",
            Shape(feature_major_, stack.out, stack.n).DebugString()));
    for (int i = 0; i < 2 * num_layers_; ++i) {
      OP_REQUIRES(
          context,
          context->input(d_output + 1 + i).shape() ==
              context->input(1 + i).shape(),
          InvalidArgument(
              "the gradient of state ", i, " has shape ",
              context->input(d_output + 1 + i).shape().DebugString(),
              ", expected ", context->input(1 + i).shape().DebugString()));
    }
    Outputs outputs;
    // The gradients of the rows and the state, shaped as they are.
    OP_REQUIRES_OK(context, context->allocate_output(
                                0, context->input(0).shape(), &outputs.d_rows));
    outputs.d_state.resize(2 * num_layers_);
    for (int i = 0; i < 2 * num_layers_; ++i) {
      OP_REQUIRES_OK(context, context->allocate_output(
                                  1 + i, context->input(1 + i).shape(),
                                  &outputs.d_state[i]));
    }
    const int first_weights = 1 + 2 * num_layers_;
    for (int layer = 0; layer < num_layers_; ++layer) {
      const int64_t size = stack.sizes[layer];
      Tensor* tensor = nullptr;
      OP_REQUIRES_OK(
          context,
          context->allocate_output(
              first_weights + layer,
              TensorShape({stack.ins[layer] + size, 4 * size}), &tensor));
      outputs.d_weights.push_back(tensor);
      OP_REQUIRES_OK(
          context, context->allocate_output(first_weights + num_layers_ + layer,
                                            TensorShape({4 * size}), &tensor));
      outputs.d_biases.push_back(tensor);
    }
    const int first_output = first_weights + 2 * num_layers_;
    OP_REQUIRES_OK(context, context->allocate_output(
                                first_output,
                                context->input(stack.OutputWeights()).shape(),
                                &outputs.d_output_weights));
    OP_REQUIRES_OK(context, context->allocate_output(first_output + 1,
                                                     TensorShape({stack.out}),
                                                     &outputs.d_output_bias));
    Run(context, stack, outputs);
  }

 private:
  struct Outputs {
    Tensor* d_rows = nullptr;
    std::vector<Tensor*> d_state;
    std::vector<Tensor*> d_weights, d_biases;
    Tensor* d_output_weights = nullptr;
    Tensor* d_output_bias = nullptr;
  };

  // Where each gradient of weights is summed, in one buffer of floats:
  // per layer [in + size + 1, 4 size] (the biases' as the last row), then
  // the output layer's [top + 1, out] (its bias' as the last row).
  struct Sums {
    std::vector<int64_t> offsets;  // per layer, then the output layer
    int64_t size = 0;

    explicit Sums(const Stack& stack) {
      for (int layer = 0; layer < stack.num_layers; ++layer) {
        offsets.push_back(size);
        size += (stack.ins[layer] + stack.sizes[layer] + 1) * 4 *
                stack.sizes[layer];
      }
      offsets.push_back(size);
      size += (stack.TopSize() + 1) * stack.out;
    }

    // The sums at `offset` for `weights` and (if `with_bias`) a row of
    // biases under them.
    static Eigen::Map<RowMajor> Of(float* sums, int64_t offset,
                                   const Weights& weights, bool with_bias) {
      return Eigen::Map<RowMajor>(sums + offset, weights.rows() + with_bias,
                                  weights.cols());
    }
  };

  void Run(OpKernelContext* context, const Stack& stack,
           const Outputs& outputs) {
    const Layout layout(feature_major_, stack.n);
    const int d_output = stack.OutputWeights() + 1;
    const int64_t top_size = stack.TopSize();
    const Sums sums(stack);
    const int64_t num_blocks = (stack.n + kBlock - 1) / kBlock;
    const int64_t num_chunks = std::min(num_blocks, kMaxChunks);
    // One chunk's sums (of zeros) for no coordinates.
    std::vector<float> chunk_sums(std::max<int64_t>(num_chunks, 1) * sums.size,
                                  0.0f);
    Weights output_weights = OutputWeights(context, stack);

    auto run_chunks = [&](int64_t first_chunk, int64_t end_chunk) {
      std::vector<LayerPass> passes;
      RowMajor rows, d_result, d_above, d_hidden, d_next_cell, d_gates,
          d_stacked;
      for (int64_t chunk = first_chunk; chunk < end_chunk; ++chunk) {
        float* sum = chunk_sums.data() + chunk * sums.size;
        for (int64_t block = chunk * num_blocks / num_chunks;
             block < (chunk + 1) * num_blocks / num_chunks; ++block) {
          const int64_t start = block * kBlock;
          const int64_t count = std::min(kBlock, stack.n - start);
          // The forward pass again, in cache: what the gradient reads.
          const RowMajor& top =
              Forward(context, stack, layout, start, count, true, rows, passes);
          d_result.resize(stack.out, count);
          layout.Load(context->input(d_output), start, d_result);
          auto output_sum =
              Sums::Of(sum, sums.offsets.back(), output_weights, true);
          AddProductTransposed(top, d_result, output_sum.topRows(top_size));
          output_sum.bottomRows(1) += d_result.rowwise().sum().transpose();
          SetProduct(output_weights, d_result, &d_above);
          // Each layer's, from the top; d_above is the gradient of its
          // next hidden state from the layer above.
          for (int layer = num_layers_ - 1; layer >= 0; --layer) {
            const LayerPass& pass = passes[layer];
            const int64_t in = stack.ins[layer], size = stack.sizes[layer];
            const auto input_gate = pass.gates.topRows(size).array();
            const auto candidate = pass.gates.middleRows(size, size).array();
            const auto forget_gate =
                pass.gates.middleRows(2 * size, size).array();
            const auto output_gate = pass.gates.bottomRows(size).array();
            const auto next_cell_tanh = pass.next_cell_tanh.array();
            d_hidden.resize(size, count);
            layout.Load(context->input(d_output + 1 + 2 * layer), start,
                        d_hidden);
            d_hidden += d_above;
            // TanhGrad(y, dy) = dy (1 - y^2), SigmoidGrad(y, dy) =
            // dy y (1 - y), as lstm_stack._cell_backward.
            d_next_cell.resize(size, count);
            layout.Load(context->input(d_output + 2 + 2 * layer), start,
                        d_next_cell);
            d_next_cell.array() += d_hidden.array() * output_gate *
                                   (1.0f - next_cell_tanh.square());
            d_gates.resize(4 * size, count);
            d_gates.topRows(size).array() = d_next_cell.array() * candidate *
                                            input_gate * (1.0f - input_gate);
            d_gates.middleRows(size, size).array() =
                d_next_cell.array() * input_gate * (1.0f - candidate.square());
            d_gates.middleRows(2 * size, size).array() =
                d_next_cell.array() * pass.cell.array() * forget_gate *
                (1.0f - forget_gate);
            d_gates.bottomRows(size).array() = d_hidden.array() *
                                               next_cell_tanh * output_gate *
                                               (1.0f - output_gate);
            layout.Store(outputs.d_state[2 * layer + 1], start,
                         (d_next_cell.array() * forget_gate).matrix());
            Weights weights = GateWeights(context, stack, layer);
            // [x; h; 1] against the gates' gradient: the weights' and the
            // biases' gradients at once.
            AddProductTransposed(
                pass.stacked, d_gates,
                Sums::Of(sum, sums.offsets[layer], weights, false));
            SetProduct(weights.topRows(in + size), d_gates, &d_stacked);
            layout.Store(outputs.d_state[2 * layer], start,
                         d_stacked.bottomRows(size));
            d_above = d_stacked.topRows(in);
          }
          // d_above is now the gradient of the input rows.
          layout.Store(outputs.d_rows, start, d_above);
        }
      }
    };
    auto workers = context->device()->tensorflow_cpu_worker_threads();
    workers->workers->ParallelFor(
        num_chunks,
        3 * stack.BlockCost() * num_blocks / std::max<int64_t>(num_chunks, 1),
        run_chunks);

    // The chunks' sums, in order, into the weights' gradients.
    Eigen::Map<Eigen::VectorXf> total(chunk_sums.data(), sums.size);
    for (int64_t chunk = 1; chunk < num_chunks; ++chunk) {
      total += Eigen::Map<Eigen::VectorXf>(
          chunk_sums.data() + chunk * sums.size, sums.size);
    }
    auto copy_out = [&](int64_t offset, int64_t rows, int64_t columns,
                        Tensor* weights, Tensor* biases) {
      const float* from = chunk_sums.data() + offset;
      std::copy(from, from + rows * columns, weights->flat<float>().data());
      std::copy(from + rows * columns, from + (rows + 1) * columns,
                biases->flat<float>().data());
    };
    for (int layer = 0; layer < num_layers_; ++layer) {
      copy_out(sums.offsets[layer], stack.ins[layer] + stack.sizes[layer],
               4 * stack.sizes[layer], outputs.d_weights[layer],
               outputs.d_biases[layer]);
    }
    copy_out(sums.offsets.back(), top_size, stack.out, outputs.d_output_weights,
             outputs.d_output_bias);
  }
};

// The shapes of L2lLstmStack's outputs from its inputs.
::tensorflow::Status StackShapes(InferenceContext* c) {
  bool feature_major;
  TF_RETURN_IF_ERROR(c->GetAttr("feature_major", &feature_major));
  int num_state;
  TF_RETURN_IF_ERROR(c->GetAttr("num_state", &num_state));
  ShapeHandle rows;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 2, &rows));
  ShapeHandle output_weights;
  TF_RETURN_IF_ERROR(
      c->WithRank(c->input(1 + num_state + num_state / 2), 2, &output_weights));
  DimensionHandle coordinates = c->Dim(rows, feature_major ? 1 : 0);
  DimensionHandle out = c->Dim(output_weights, 1);
  c->set_output(0, feature_major ? c->Matrix(out, coordinates)
                                 : c->Matrix(coordinates, out));
  for (int i = 0; i < num_state; ++i) {
    c->set_output(1 + i, c->input(1 + i));
  }
  return ::tensorflow::OkStatus();
}

// The shapes of L2lLstmStackGrad's outputs from its inputs.
::tensorflow::Status StackGradShapes(InferenceContext* c) {
  int num_state, num_layers;
  TF_RETURN_IF_ERROR(c->GetAttr("num_state", &num_state));
  TF_RETURN_IF_ERROR(c->GetAttr("num_layers", &num_layers));
  for (int i = 0; i <= num_state; ++i) {
    c->set_output(i, c->input(i));
  }
  for (int layer = 0; layer < num_layers; ++layer) {
    ShapeHandle weights;
    TF_RETURN_IF_ERROR(
        c->WithRank(c->input(1 + num_state + layer), 2, &weights));
    DimensionHandle rows;
    TF_RETURN_IF_ERROR(c->Subtract(c->Dim(weights, 0), 1, &rows));
    c->set_output(1 + num_state + layer, c->Matrix(rows, c->Dim(weights, 1)));
    c->set_output(1 + num_state + num_layers + layer,
                  c->Vector(c->Dim(weights, 1)));
  }
  ShapeHandle output_weights;
  TF_RETURN_IF_ERROR(
      c->WithRank(c->input(1 + num_state + num_layers), 2, &output_weights));
  c->set_output(1 + num_state + 2 * num_layers, output_weights);
  c->set_output(2 + num_state + 2 * num_layers,
                c->Vector(c->Dim(output_weights, 1)));
  return ::tensorflow::OkStatus();
}

REGISTER_OP("L2lLstmStack")
    .Attr("num_layers: int >= 0")
    .Attr("num_state: int >= 0")
    .Attr("feature_major: bool")
    .Input("rows: float")
    .Input("state: num_state * float")
    .Input("weights: num_layers * float")
    .Input("output_weights: float")
    .Input("output_bias: float")
    .Output("output: float")
    .Output("next_state: num_state * float")
    .SetShapeFn(StackShapes);

REGISTER_OP("L2lLstmStackGrad")
    .Attr("num_layers: int >= 0")
    .Attr("num_state: int >= 0")
    .Attr("feature_major: bool")
    .Input("rows: float")
    .Input("state: num_state * float")
    .Input("weights: num_layers * float")
    .Input("output_weights: float")
    .Input("d_output: float")
    .Input("d_next_state: num_state * float")
    .Output("d_rows: float")
    .Output("d_state: num_state * float")
    .Output("d_weights: num_layers * float")
    .Output("d_biases: num_layers * float")
    .Output("d_output_weights: float")
    .Output("d_output_bias: float")
    .SetShapeFn(StackGradShapes);

REGISTER_KERNEL_BUILDER(Name("L2lLstmStack").Device(::tensorflow::DEVICE_CPU),
                        LstmStackOp);
REGISTER_KERNEL_BUILDER(
    Name("L2lLstmStackGrad").Device(::tensorflow::DEVICE_CPU), LstmStackGradOp);

}  // namespace l2l
