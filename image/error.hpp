// Errors of the image library. Every error names the file and, where there
// is one, the HDF5 object it concerns, so that the single place reporting it
// (a tool's main) can print one clear line.
#pragma once

#include <stdexcept>
#include <string>

namespace ckpt::image {

class ImageError : public std::runtime_error {
public:
    ImageError(std::string file, std::string object, const std::string& what)
        : std::runtime_error(compose(file, object, what)), file_(std::move(file)), object_(std::move(object)) {}

    const std::string& file() const { return file_; }
    const std::string& object() const { return object_; }

private:
    static std::string compose(const std::string& file, const std::string& object, const std::string& what) {
        std::string s = file;
        if (!object.empty()) s += ": " + object;
        return s + ": " + what;
    }
    std::string file_;
    std::string object_;
};

}  // namespace ckpt::image
