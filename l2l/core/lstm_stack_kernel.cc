// One TensorFlow op for the forward pass of lstm_stack.step: every LSTM
// cell of the stack and the output layer, over blocks of coordinates.
//
// TensorFlow runs the stack as a few dozen ops, each reading and writing
// whole [features, coordinates] tensors; the step is then bound by memory
// traffic and per-op overhead, not by its matmuls. Here each thread takes
// a block of coordinates through the whole stack while it sits in cache.
// The formula is lstm_stack.py's (Sonnet 1's LSTM); the activations are
// Eigen's, as TensorFlow's Sigmoid and Tanh kernels compute them.
//
// Inputs: rows [width, n] (feature_major) or [n, width]; per layer its
// hidden and cell state, [size, n] or [n, size]; per layer its gate
// weights with the biases as the last row (lstm_stack._with_bias), [width
// + size + 1, 4 size], gates ordered (i, j, f, o); the output layer's
// weights [size, out] and bias [out]. Outputs: the output, then each
// layer's next hidden and cell state, laid out as the inputs; then, with
// num_kept = num_layers, what the backward pass keeps of each layer:
// [5 size] features per coordinate, sigmoid(i), tanh(j), sigmoid(f),
// sigmoid(o) and tanh(next cell).

#include <algorithm>
#include <vector>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/platform/threadpool.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace l2l {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic,
                               Eigen::RowMajor>;
using ConstView = Eigen::Map<const RowMajor, 0, Eigen::OuterStride<>>;
using View = Eigen::Map<RowMajor, 0, Eigen::OuterStride<>>;
using Weights = Eigen::Map<const RowMajor>;

// Coordinates a thread takes through the stack at once: enough for the
// matmuls to run at speed, few enough that a block's gates stay in cache.
constexpr int64_t kBlock = 128;

// Both layouts are row-major tensors, so a block of coordinates is a
// contiguous-row view in either, without copies: [features, count] in a
// feature-major tensor [features, n], [count, features] in a
// coordinate-major one [n, features]. `Layout` gives each the same
// products, transposed, and the gates' slices along its feature axis.
template <bool FeatureMajor>
struct Layout {
  template <typename MapType, typename Pointer>
  static MapType Block(Pointer base, int64_t features, int64_t n,
                       int64_t start, int64_t count) {
    if constexpr (FeatureMajor) {
      return MapType(base + start, features, count, Eigen::OuterStride<>(n));
    } else {
      return MapType(base + start * features, count, features,
                     Eigen::OuterStride<>(features));
    }
  }

  // Features [first, first + size) of a block.
  template <typename Matrix>
  static auto Features(Matrix& matrix, int64_t first, int64_t size) {
    if constexpr (FeatureMajor) {
      return matrix.middleRows(first, size);
    } else {
      return matrix.middleCols(first, size);
    }
  }

  // result = rows @ weights over the features ([in, out] weights), or
  // result += that.
  template <typename Result, typename Rows, typename W>
  static void Linear(Result& result, const Rows& rows, const W& weights,
                     bool accumulate) {
    if constexpr (FeatureMajor) {
      if (accumulate) {
        result.noalias() += weights.transpose() * rows;
      } else {
        result.noalias() = weights.transpose() * rows;
      }
    } else {
      if (accumulate) {
        result.noalias() += rows * weights;
      } else {
        result.noalias() = rows * weights;
      }
    }
  }

  // Adds a [1, out] bias to every coordinate.
  template <typename Result, typename Bias>
  static void AddBias(Result& result, const Bias& bias) {
    if constexpr (FeatureMajor) {
      result.colwise() += bias.row(0).transpose();
    } else {
      result.rowwise() += bias.row(0);
    }
  }
};

REGISTER_OP("L2lLstmStack")
    .Attr("num_layers: int >= 0")
    .Attr("feature_major: bool")
    .Input("rows: float")
    .Input("state: num_state * float")
    .Input("weights: num_layers * float")
    .Input("output_weights: float")
    .Input("output_bias: float")
    .Output("output: float")
    .Output("next_state: num_state * float")
    .Output("kept: num_kept * float")
    .Attr("num_state: int >= 0")
    .Attr("num_kept: int >= 0")
    .SetShapeFn([](InferenceContext* c) {
      bool feature_major;
      TF_RETURN_IF_ERROR(c->GetAttr("feature_major", &feature_major));
      int num_state;
      TF_RETURN_IF_ERROR(c->GetAttr("num_state", &num_state));
      ShapeHandle rows;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 2, &rows));
      ShapeHandle output_weights;
      TF_RETURN_IF_ERROR(
          c->WithRank(c->input(1 + num_state + num_state / 2), 2,
                      &output_weights));
      auto coordinates = c->Dim(rows, feature_major ? 1 : 0);
      auto out = c->Dim(output_weights, 1);
      c->set_output(0, feature_major ? c->Matrix(out, coordinates)
                                     : c->Matrix(coordinates, out));
      for (int i = 0; i < num_state; ++i) {
        c->set_output(1 + i, c->input(1 + i));
      }
      int num_kept;
      TF_RETURN_IF_ERROR(c->GetAttr("num_kept", &num_kept));
      for (int layer = 0; layer < num_kept; ++layer) {
        ShapeHandle weights;
        TF_RETURN_IF_ERROR(c->WithRank(c->input(1 + num_state + layer), 2,
                                       &weights));
        ::tensorflow::shape_inference::DimensionHandle kept;
        TF_RETURN_IF_ERROR(c->Multiply(c->Dim(weights, 1), 5, &kept));
        TF_RETURN_IF_ERROR(c->Divide(kept, 4, true, &kept));
        c->set_output(1 + num_state + layer,
                      feature_major ? c->Matrix(kept, coordinates)
                                    : c->Matrix(coordinates, kept));
      }
      return ::tensorflow::OkStatus();
    });

class LstmStackOp : public OpKernel {
 public:
  explicit LstmStackOp(OpKernelConstruction* context) : OpKernel(context) {
    OP_REQUIRES_OK(context, context->GetAttr("num_layers", &num_layers_));
    int num_state;
    OP_REQUIRES_OK(context, context->GetAttr("num_state", &num_state));
    OP_REQUIRES(context, num_state == 2 * num_layers_,
                ::tensorflow::errors::InvalidArgument(
                    "expected a hidden and a cell state per layer"));
    int num_kept;
    OP_REQUIRES_OK(context, context->GetAttr("num_kept", &num_kept));
    OP_REQUIRES(context, num_kept == 0 || num_kept == num_layers_,
                ::tensorflow::errors::InvalidArgument(
                    "num_kept is 0 or the number of layers"));
    keep_ = num_kept > 0;
    OP_REQUIRES_OK(context,
                   context->GetAttr("feature_major", &feature_major_));
  }

  void Compute(OpKernelContext* context) override {
    const Tensor& rows = context->input(0);
    const int64_t n = rows.dim_size(feature_major_ ? 1 : 0);
    const int first_weight = 1 + 2 * num_layers_;
    const Tensor& output_weights = context->input(first_weight + num_layers_);
    std::vector<int64_t> sizes(num_layers_);
    int64_t below = rows.dim_size(feature_major_ ? 0 : 1);
    for (int layer = 0; layer < num_layers_; ++layer) {
      const Tensor& weights = context->input(first_weight + layer);
      OP_REQUIRES(context,
                  weights.dims() == 2 && weights.dim_size(1) % 4 == 0,
                  ::tensorflow::errors::InvalidArgument(
                      "gate weights must be [inputs + size + 1, 4 size]"));
      sizes[layer] = weights.dim_size(1) / 4;
      OP_REQUIRES(context, weights.dim_size(0) == below + sizes[layer] + 1,
                  ::tensorflow::errors::InvalidArgument(
                      "layer ", layer, "'s gate weights have ",
                      weights.dim_size(0), " rows, expected ",
                      below + sizes[layer] + 1));
      below = sizes[layer];
    }
    OP_REQUIRES(context, output_weights.dim_size(0) == below,
                ::tensorflow::errors::InvalidArgument(
                    "output weights have ", output_weights.dim_size(0),
                    " rows, expected ", below));
    const int64_t out = output_weights.dim_size(1);
    Tensor* output = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(
                                0,
                                feature_major_ ? TensorShape({out, n})
                                               : TensorShape({n, out}),
                                &output));
    std::vector<Tensor*> next_state(2 * num_layers_);
    for (int i = 0; i < 2 * num_layers_; ++i) {
      OP_REQUIRES_OK(context, context->allocate_output(
                                  1 + i, context->input(1 + i).shape(),
                                  &next_state[i]));
    }
    std::vector<Tensor*> kept(keep_ ? num_layers_ : 0);
    for (int layer = 0; layer < static_cast<int>(kept.size()); ++layer) {
      const int64_t features = 5 * sizes[layer];
      OP_REQUIRES_OK(context,
                     context->allocate_output(
                         1 + 2 * num_layers_ + layer,
                         feature_major_ ? TensorShape({features, n})
                                        : TensorShape({n, features}),
                         &kept[layer]));
    }
    if (feature_major_) {
      Run<true>(context, sizes, n, output, next_state, kept);
    } else {
      Run<false>(context, sizes, n, output, next_state, kept);
    }
  }

 private:
  template <bool FeatureMajor>
  void Run(OpKernelContext* context, const std::vector<int64_t>& sizes,
           int64_t n, Tensor* output, const std::vector<Tensor*>& next_state,
           const std::vector<Tensor*>& kept) {
    using L = Layout<FeatureMajor>;
    const int first_weight = 1 + 2 * num_layers_;
    const Tensor& rows = context->input(0);
    const Tensor& output_weights = context->input(first_weight + num_layers_);
    const Tensor& output_bias = context->input(first_weight + num_layers_ + 1);
    const int64_t out = output_weights.dim_size(1);
    const int64_t width = rows.dim_size(FeatureMajor ? 0 : 1);
    auto run_blocks = [&](int64_t first_block, int64_t end_block) {
      RowMajor gates, candidate;
      for (int64_t block = first_block; block < end_block; ++block) {
        const int64_t start = block * kBlock;
        const int64_t count = std::min(kBlock, n - start);
        // The layer's input: the rows, then the hidden state just written
        // for the layer below.
        const float* below = rows.flat<float>().data();
        int64_t in = width;
        for (int layer = 0; layer < num_layers_; ++layer) {
          const int64_t size = sizes[layer];
          // [in + size + 1, 4 size]: input rows, hidden rows, the biases.
          Weights weights(
              context->input(first_weight + layer).flat<float>().data(),
              in + size + 1, 4 * size);
          if (FeatureMajor) {
            gates.resize(4 * size, count);
          } else {
            gates.resize(count, 4 * size);
          }
          L::Linear(gates,
                    L::template Block<ConstView>(below, in, n, start, count),
                    weights.topRows(in), false);
          L::Linear(gates,
                    L::template Block<ConstView>(
                        context->input(1 + 2 * layer).flat<float>().data(),
                        size, n, start, count),
                    weights.middleRows(in, size), true);
          L::AddBias(gates, weights.bottomRows(1));
          auto cell = L::template Block<ConstView>(
              context->input(2 + 2 * layer).flat<float>().data(), size, n,
              start, count);
          auto next_cell = L::template Block<View>(
              next_state[2 * layer + 1]->flat<float>().data(), size, n,
              start, count);
          auto next_hidden = L::template Block<View>(
              next_state[2 * layer]->flat<float>().data(), size, n, start,
              count);
          // Gates (i, j, f, o); the forget bias is in the biases.
          if (keep_) {
            // The activations go where the backward pass reads them.
            auto acts = L::template Block<View>(
                kept[layer]->flat<float>().data(), 5 * size, n, start,
                count);
            L::Features(acts, 0, size).array() =
                L::Features(gates, 0, size).array().logistic();
            L::Features(acts, size, size).array() =
                L::Features(gates, size, size).array().tanh();
            L::Features(acts, 2 * size, 2 * size).array() =
                L::Features(gates, 2 * size, 2 * size).array().logistic();
            next_cell.array() =
                L::Features(acts, 2 * size, size).array() * cell.array() +
                L::Features(acts, 0, size).array() *
                    L::Features(acts, size, size).array();
            L::Features(acts, 4 * size, size).array() =
                next_cell.array().tanh();
            next_hidden.array() = L::Features(acts, 3 * size, size).array() *
                                  L::Features(acts, 4 * size, size).array();
          } else if constexpr (FeatureMajor) {
            // Each gate's rows are contiguous: one pass per activation.
            next_cell.array() =
                L::Features(gates, 2 * size, size).array().logistic() *
                    cell.array() +
                L::Features(gates, 0, size).array().logistic() *
                    L::Features(gates, size, size).array().tanh();
            next_hidden.array() =
                L::Features(gates, 3 * size, size).array().logistic() *
                next_cell.array().tanh();
          } else {
            // A coordinate's gates are contiguous, a gate's are not: the
            // candidate's tanh first, then the sigmoid of all the gates in
            // one contiguous pass (the candidate's goes unused), which is
            // faster than a pass per gate along strided rows.
            candidate = L::Features(gates, size, size).array().tanh();
            gates.array() = gates.array().logistic();
            next_cell.array() =
                L::Features(gates, 2 * size, size).array() * cell.array() +
                L::Features(gates, 0, size).array() * candidate.array();
            next_hidden.array() = L::Features(gates, 3 * size, size).array() *
                                  next_cell.array().tanh();
          }
          below = next_state[2 * layer]->flat<float>().data();
          in = size;
        }
        auto result = L::template Block<View>(output->flat<float>().data(),
                                              out, n, start, count);
        Weights top(output_weights.flat<float>().data(), in, out);
        L::Linear(result,
                  L::template Block<ConstView>(below, in, n, start, count),
                  top, false);
        L::AddBias(result,
                   Eigen::Map<const RowMajor>(output_bias.flat<float>().data(),
                                              1, out));
      }
    };
    // Each block's FLOPs: its matmuls, and the activations' passes.
    int64_t block_cost = 2 * out * (num_layers_ ? sizes.back() : width);
    int64_t in = width;
    for (int64_t size : sizes) {
      block_cost += 2 * (in + size + 1) * 4 * size + 20 * size;
      in = size;
    }
    auto workers = context->device()->tensorflow_cpu_worker_threads();
    workers->workers->ParallelFor((n + kBlock - 1) / kBlock,
                                  block_cost * kBlock, run_blocks);
  }

  int num_layers_;
  bool feature_major_;
  bool keep_;
};

REGISTER_KERNEL_BUILDER(Name("L2lLstmStack").Device(::tensorflow::DEVICE_CPU),
                        LstmStackOp);

}  // namespace l2l
