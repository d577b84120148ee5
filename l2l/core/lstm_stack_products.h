// The matrix products of the fused LSTM stack's kernels
// (lstm_stack_kernel.cc), compiled apart from them.
//
// Eigen's matrix product is most of the kernels' compile time, and the
// TensorFlow headers most of the rest: with the products in a file of
// their own, which includes Eigen alone, native.py compiles the two files
// side by side. The products are Eigen's, as they were inline: the
// arguments' views keep the storage order, so the results are the same.

#ifndef L2L_CORE_LSTM_STACK_PRODUCTS_H_
#define L2L_CORE_LSTM_STACK_PRODUCTS_H_

#include "Eigen/Core"

namespace l2l {

using RowMajor =
    Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
// A row-major matrix or a block of rows of one, read or written in place.
using ConstMatrixRef = Eigen::Ref<const RowMajor, 0, Eigen::OuterStride<>>;
using MatrixRef = Eigen::Ref<RowMajor, 0, Eigen::OuterStride<>>;

// *product = a^T b.
void SetTransposedProduct(ConstMatrixRef a, ConstMatrixRef b,
                          RowMajor* product);

// *product = a b.
void SetProduct(ConstMatrixRef a, ConstMatrixRef b, RowMajor* product);

// sum += a b^T.
void AddProductTransposed(ConstMatrixRef a, ConstMatrixRef b, MatrixRef sum);

}  // namespace l2l

#endif  // L2L_CORE_LSTM_STACK_PRODUCTS_H_
