# Doxygen INPUT_FILTER (see Doxyfile): berth's headers use plain // comments. The comment lines right above a
# declaration, and a member's trailing comment, become its documentation; <word> and @word in them are text.
s@^( *)// ?@\1/// @
s@([;{,]) +// @\1 ///< @
/\/\/\//{
  s@<([A-Za-z_])@\\<\1@g
  s|@([a-z])|\\@\1|g
}
# Specializations of Boost's traits (is_error_code_enum) are not berth's API, and Doxygen 1.9 cannot place them.
/^template <>$/{
  N
  /\nstruct boost::/d
}
