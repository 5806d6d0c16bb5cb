"""The recurrent acoustic models of the paper (LSTM, lazy-update LSTM, GRU, tanh RNN, DNN baselines): the network,
natural-gradient SGD, chunked training examples, training, the trained model dir, hybrid decoding and recognition."""
