// The products lstm_stack_products.h declares.

#include "lstm_stack_products.h"

namespace l2l {

void SetTransposedProduct(ConstMatrixRef a, ConstMatrixRef b,
                          RowMajor* product) {
  product->noalias() = a.transpose() * b;
}

void SetProduct(ConstMatrixRef a, ConstMatrixRef b, RowMajor* product) {
  product->noalias() = a * b;
}

void AddProductTransposed(ConstMatrixRef a, ConstMatrixRef b, MatrixRef sum) {
  sum.noalias() += a * b.transpose();
}

}  // namespace l2l
