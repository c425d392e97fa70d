"""What metanetworks are trained to do, one subpackage per task (notebooks 06, 07 and 08):

- :mod:`.invariant`: predict a property of a network from its weights (accuracy, an INR's digit);
- :mod:`.amortized`: one-shot operators that improve a network in a forward pass (the one-shot paper);
- :mod:`.merging`: autoencoders of networks and model merging in a canonical gauge (the autoencoder paper);
- :mod:`.losses`: the objectives on batches of networks that the tasks share.
"""
