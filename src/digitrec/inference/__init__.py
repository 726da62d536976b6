"""The serving half's core: safe image decoding, preprocessing to MNIST's 28x28, number segmentation, the ONNX
Runtime predictor, calibrated refusal and explanations. NumPy, Pillow, OpenCV and ONNX Runtime only: never torch,
never `digitrec.training`.
"""
